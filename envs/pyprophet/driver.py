"""deepms peer driver: seed Python's and numpy's RNGs, then run PyProphet's CLI in-process."""

import random
import sys

import numpy as np

seed = int(sys.argv[1])
random.seed(seed)
np.random.seed(seed)
from pyprophet.main import cli  # noqa: E402

cli.main(args=sys.argv[2:], prog_name="pyprophet")
