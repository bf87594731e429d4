"""Coverage-guided fuzzing (atheris) of every parser that reads untrusted bytes.

``targets`` holds one function per parser, ``seeds`` builds their starting
corpus at run time, ``run`` is the command line: ``python -m fuzz.run --help``.
"""
