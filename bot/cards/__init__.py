"""Model cards: card data built by pure code, rendered by Jinja templates."""
