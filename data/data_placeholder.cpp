// Placeholder until the first data sources land.
