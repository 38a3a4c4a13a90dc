"""The action registry and the modules that declare actions (importing this registers them all)."""

import openbotkit.actions.bots
import openbotkit.actions.completion
import openbotkit.actions.conversations
import openbotkit.actions.dataset_files
import openbotkit.actions.datasets
import openbotkit.actions.evaluation
import openbotkit.actions.file_content
import openbotkit.actions.files
import openbotkit.actions.jobs
import openbotkit.actions.search
import openbotkit.actions.tokens
import openbotkit.actions.usage
from openbotkit.actions.registry import REGISTRY, Action, Effect, Registry, action

__all__ = ["REGISTRY", "Action", "Effect", "Registry", "action"]
