"""The aiohttp intake server: source pages, uploads and the reviewer API."""
