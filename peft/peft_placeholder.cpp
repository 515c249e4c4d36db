// Placeholder until the first PEFT sources land.
