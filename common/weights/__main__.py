"""``python -m common.weights NAME ...``: train and write the course weights (see ``common.weights``)."""
import sys

from common.weights import main

main(sys.argv[1:])
