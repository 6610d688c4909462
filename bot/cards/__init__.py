"""Model cards: card data built by pure code, rendered by Jinja templates."""

#: A card's files in a repository's root: the card, and the quality plot a card of several
#: formats shows. Publishers' card-only update (``update_cards``) writes these and nothing else.
CARD_FILE = "README.md"
PLOT_FILE = "quality.png"
CARD_FILES = (CARD_FILE, PLOT_FILE)
