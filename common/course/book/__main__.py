"""``python -m common.course.book``: build and check the book (see ``common.course.book``)."""
import sys

from . import main

sys.exit(main())
