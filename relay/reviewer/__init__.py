"""The reviewer's side: what runs on the reviewer's offline (and, later, online) machine.

Nothing here is the relay server: the package never imports ``relay.server`` or
aiohttp (import-linter checks it). ``relay.reviewer.safe_copy`` turns hostile
attachments into safe copies, page images inside a sandbox.
"""
