"""What ``max serve --custom-architectures`` imports: the course's GPT-2, registered.

The served model class comes from the module ``python -m gpt2 serve`` names in the
environment (step 14's reference, or the learner's file with ``--mine``).
"""

from gpt2.serving import architecture

ARCHITECTURES = [architecture()]
