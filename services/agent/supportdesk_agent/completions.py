"""Reading a non-streamed chat completion from any OpenAI-compatible endpoint."""

from openai.types.chat import ChatCompletion


class MalformedCompletion(ValueError):
    """The endpoint answered 200 with something that is no chat completion."""


def completion_text(response: object) -> str:
    """The first choice's text ("" when the model said nothing). The openai
    client hands back the raw body when an endpoint answers with another
    content type (an event stream to a non-streamed call, plain text): that
    is the endpoint misbehaving, and must not pass for an answer, nor crash
    the turn it was asked in."""
    if not isinstance(response, ChatCompletion):
        raise MalformedCompletion(f"the LLM endpoint answered with a {type(response).__name__}, not a chat completion")
    return (response.choices[0].message.content or "").strip() if response.choices else ""
