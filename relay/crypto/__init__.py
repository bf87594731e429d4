"""age v1 (C2SP age-encryption.org/v1) on pynacl, and nothing else from relay.

The only package in tiprelay that imports nacl. Import what you need from the
submodules; this file deliberately re-exports nothing, so that importing the
encrypting side never pulls in secret-key code:

- ``relay.crypto.recipients``  public keys that *wrap* a file key (server-safe)
- ``relay.crypto.identities``  age's secret keys that *unwrap* it (offline only)
- ``relay.crypto.unwrap``      which identity opens which stanza (offline only)
- ``relay.crypto.identity_file`` identity files, plain or passphrase-protected
- ``relay.crypto.openpgp_keys``  checking a reviewer's OpenPGP public key (gpg)
- ``relay.crypto.openpgp_recipient`` wrapping to it in a public-only gpg home
- ``relay.crypto.openpgp_identity``  unwrapping with the reviewer's own gpg
- ``relay.crypto.openpgp_packets``   a bounded reader of the stanza's packets
- ``relay.crypto.age_plugin``  ``age-plugin-tiprelay``: stock age opens them via gpg
- ``relay.crypto.plugin_ipc``  the age plugin protocol's stanzas, read within bounds
- ``relay.crypto.encrypt``     streaming encryption (server-safe)
- ``relay.crypto.decrypt``     streaming decryption (offline only)
- ``relay.crypto.format``      header parsing and writing
- ``relay.crypto.armor``       the PEM-like ASCII armor
- ``relay.crypto.padding``     Padmé length padding
- ``relay.crypto.errors``      the error tree
"""
