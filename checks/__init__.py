"""The course's checker: `python -m checks NN` compares your step with the reference."""
