"""``python -m common.course.weights [NAME ...]``: train and write the course weights (see
``common.course.weights``); no name: every recipe."""
import argparse

from common.course import weights


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m common.course.weights", description=__doc__.split("(")[0])
    p.add_argument("names", nargs="*", help="recipes to train (default: all)")
    p.add_argument("--rescore", action="store_true",
                   help="train nothing: score the shipped weights again on the val and test scenes "
                        "and rewrite those records of their JSON")
    args = p.parse_args(argv)
    weights.main(args.names, rescore_only=args.rescore)    # loads the recipes, and Paddle, only now


if __name__ == "__main__":
    main()
