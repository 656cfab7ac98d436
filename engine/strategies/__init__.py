"""Trading strategies, one pure module each: books in, actions out."""
