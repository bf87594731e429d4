// Loads the OpenPGP wrapper (dist/openpgp-wrap.js, OpenPGP.js inside) only on
// relays that have OpenPGP reviewers: it weighs several times the rest of the
// page's script, and most relays have none. It is an ES module next to the
// page's bundle, imported by URL (the CSP's script-src 'self' allows it); the
// page starts loading it as soon as it knows it will need it (app.js), and the
// header waits for it (age_header.js).

// The bundle's own URL is only known while it first runs.
const WRAP_URL =
  globalThis.document && document.currentScript && document.currentScript.src
    ? new URL("openpgp-wrap.js", document.currentScript.src).href
    : null;

let loading = null;

/** The wrapper module (`{wrapFileKeyForOpenpgp}`), loaded once; a failed load is tried again. */
export function loadOpenpgpWrap() {
  if (!loading) {
    if (!WRAP_URL) return Promise.reject(new Error("the OpenPGP wrapper's address is unknown"));
    loading = import(WRAP_URL).catch((error) => {
      loading = null; // a dropped connection must not make it fail for good
      throw error;
    });
  }
  return loading;
}
