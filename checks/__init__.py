"""The course's checker: `python -m checks NN` compares your step with the reference.

One path for every check::

    python -m checks 07          cli.py      the command line; never imports MAX
      └─ run.checks([7])         run.py      starts one child process, reads its log
           └─ python -m checks.child         child.py    imports MAX, holds the time limit
                └─ engine.check(7, file)     engine.py   load the file, run every case, compare,
                     │                                   name the known mistake
                     ├─ specs/step_07.py     what to run, compare, and which mistakes
                     ├─ modules.py           module steps: build, seed, run eagerly
                     └─ learner.py           the learner's code: errors, output, clock;
                                             a kernel step's Mojo through gpt2/kernels.py
           one JSON line per report  ──►  report.py shows it; gpt2.course remembers it

What is cached where: MAX's kernels and compiled graphs in MAX's cache (``~/.cache/modular``,
moved by ``MODULAR_CACHE_DIR``), filled ahead of time by the background warm-up
(warmup.py); the learner's results, hints seen and the warm-up's state in
``.cache/checks`` (moved by ``GPT2_CHECKS_CACHE``), with the learner's Mojo kernels built
once per content in ``.cache/checks/kernels``, and the reference's answers that cost a
compile (steps 12 and 13) in ``.cache/checks/expected``. A check compiles nothing of the learner's
Python: it runs on MAX's eager interpreter. A kernel step's Mojo must be compiled; the
clock stands still meanwhile. Every private MAX name the course
needs lives in ``gpt2/max_internals.py``.

Also here: watch.py (`watch`), hints.py (`--hint`), derived.py (`sync`: what course.toml
decides elsewhere), scaffold.py (`new-step`), explain.py (MAX's messages in plain words),
seeded.py (the seeded weights and inputs), results.py (``Item``, ``Report``).
"""
