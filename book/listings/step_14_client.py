"""Step 14's client: ask the course's server for a completion with OpenAI's client.

Run it while `python -m gpt2 serve --model checks/data/tiny-gpt2` serves (book/src/step_14.md;
tests/test_serving.py runs both, as written). A server started with another --model answers
to that name instead.
"""

# ANCHOR: client
from openai import OpenAI

client = OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="unused")
reply = client.completions.create(
    model="checks/data/tiny-gpt2", prompt="The meaning of life is", max_tokens=30
)
print(reply.choices[0].text)
# ANCHOR_END: client
