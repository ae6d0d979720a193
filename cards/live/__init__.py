"""What agents see: the card reads (selectors), the page's wait for updates, display and
rendering of components, and the agent views. Uses the engine (background, loading, protocol)."""
