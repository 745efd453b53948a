"""Run the mobilecost command line from a checkout: python cli.py table3"""

from mobilecost.cli import main

if __name__ == "__main__":
    main()
