"""`python -m diagkit` is the same as the `diagkit` console script."""

from diagkit.cli import main

if __name__ == "__main__":
    main()
