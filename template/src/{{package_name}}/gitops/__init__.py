"""`python -m <package> gitops`: the image each environment runs, changed the GitOps way.

- `cli`: the commands (set-image, promote, show, seed);
- `overlay`: an environment's Kustomize overlay, read and written;
- `repo`: committing an edit to the repository Argo CD reads, surviving concurrent pushes;
- `settings`: where deploys go (the answers given when the repository was generated).
"""

from .cli import main

__all__ = ["main"]
