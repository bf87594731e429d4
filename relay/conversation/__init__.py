"""Conversations: codenames, their keys, reply slots and the reply container.

The relay's return channel to sources, specified byte for byte in
docs/conversations.md, with a twin in relay/web/js/conversation/ that the
shared vectors (tests/vectors/conversation.json) hold to the same bytes.
Primitives come from relay.crypto; nothing here touches the network, the
store or the web server.

- ``relay.conversation.wordlist``    the 7776-word list (EFF, CC BY 3.0 US)
- ``relay.conversation.codename``    generating codenames, folding typed input
- ``relay.conversation.derivation``  codename + relay salt -> keys (kdf v1)
- ``relay.conversation.identity``    the reply identity (secret: narrow use only)
- ``relay.conversation.slots``       slot tags, delete tokens and their hashes
- ``relay.conversation.reply``       the reply container: build, read and check

``python -m tests.make_conversation_vectors`` writes the shared vectors and the
browser's copy of the word list.
"""
