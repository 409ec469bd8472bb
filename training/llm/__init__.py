"""LLM backends behind one chat interface: `create_llm(spec).chat(messages, ...) -> ChatResult`."""

from evdsearch.training.llm.base import ChatLLM, ChatResult, Message
from evdsearch.training.llm.factory import create_llm

__all__ = ["ChatLLM", "ChatResult", "Message", "create_llm"]
