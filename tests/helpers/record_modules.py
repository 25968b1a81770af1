"""Run `ecg-crnn ARGS...` in this process and write, at exit, every ecg_crnn module it imported (lazy imports
included) to the JSON file named first: `python record_modules.py OUT.json ARGS...`."""

import atexit
import json
import sys

if __name__ == "__main__":
    out = sys.argv[1]

    def record():
        with open(out, "w") as f:
            json.dump(sorted(m for m in sys.modules if m.split(".")[0] == "ecg_crnn"), f)

    atexit.register(record)
    sys.argv = ["ecg-crnn", *sys.argv[2:]]
    from ecg_crnn.cli import main

    sys.exit(main())
