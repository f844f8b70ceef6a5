"""``python -m common.course.weights NAME ...``: train and write the course weights (see ``common.course.weights``)."""
import sys

from common.course.weights import main

main(sys.argv[1:])
