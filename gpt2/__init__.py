"""`python -m gpt2 "prompt"`: run GPT-2 with the model this course builds, and watch it write.

See ``gpt2.cli`` for the options.
"""
