"""Language models: providers (local llama.cpp, OpenAI-compatible), routing, prompt assembly."""
