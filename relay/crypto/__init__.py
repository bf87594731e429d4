"""age v1 (C2SP age-encryption.org/v1) on pynacl, and nothing else from relay.

The only package in tiprelay that imports nacl. Import what you need from the
submodules; this file deliberately re-exports nothing, so that importing the
encrypting side never pulls in secret-key code:

- ``relay.crypto.recipients``  public keys that *wrap* a file key (server-safe)
- ``relay.crypto.identities``  secret keys that *unwrap* it (offline only)
- ``relay.crypto.encrypt``     streaming encryption (server-safe)
- ``relay.crypto.decrypt``     streaming decryption (offline only)
- ``relay.crypto.format``      header parsing and writing
- ``relay.crypto.armor``       the PEM-like ASCII armor
- ``relay.crypto.padding``     Padmé length padding
- ``relay.crypto.errors``      the error tree
"""
