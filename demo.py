"""Serve a trained DeepLabV3+ in the browser: `python demo.py --model model.keras`."""

import sys

from deeplab_support import UserError, cli, demo

if __name__ == "__main__":
    try:
        demo.main()
    except UserError as error:
        sys.exit(cli.explain(error))
