"""Name resolution, types, units, signatures and requirements: AST → IR."""

from .program import CheckResult, check_module

__all__ = ["CheckResult", "check_module"]
