from gpt2.cli import main

# Guarded: MAX's server starts its model worker by re-importing the main module.
if __name__ == "__main__":
    raise SystemExit(main())
