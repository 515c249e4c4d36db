// Placeholder until the first export sources land.
