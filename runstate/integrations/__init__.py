"""Live adapters that turn what an agent framework does into runstate events as it happens.

Each lives in its own module and imports its framework there, so `import runstate` never
needs one (install the extra: `runstate[openai-agents]`, `runstate[langchain]`):

- `runstate.integrations.openai_agents.RunstateTracingProcessor` — the OpenAI Agents SDK;
- `runstate.integrations.langchain.RunstateCallbackHandler` — LangChain and LangGraph.

Both publish from a background thread (`runstate.integrations.sender.Sender`), so the agent
never waits on runstate.
"""
