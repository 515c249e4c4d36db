// Placeholder until the first prompts sources land.
