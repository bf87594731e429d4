"""tiprelay: a tip-intake relay that stores only age-encrypted submissions."""

__version__ = "0.1.0"
