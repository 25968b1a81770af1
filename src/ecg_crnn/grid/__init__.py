"""Many models at once: the study's stale train/evaluate stages run side by side in light workspaces that share the
DVC cache, then restored into the user's workspace from DVC's run-cache (the runner, `ecg-crnn grid --jobs N`); and
what it shares with the Prefect work-pool grid (flows/grid.py): the snapshot, the stages to run, the job slots.

  shell.py       running a command, its failure named
  snapshot.py    the workspace as a git commit (tracked files, dvc.lock, params), the stages that are not up to date
  slots.py       a machine split into job slots: CPU threads, one GPU each and a share of its memory
  workspaces.py  git worktrees of a snapshot that use the user's DVC cache
  progress.py    what a job's log says: its epochs, whether it trained or was restored
  runner.py      the local runner
"""
