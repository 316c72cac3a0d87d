"""The app's request budget: 60 requests per minute per app, over every endpoint.

`limiter` keeps the window, `adapter` makes every HTTP request pay into it, `stores` (with
`sqlite_store` and `redis_store`) says where the window lives, `opening` picks the store a
`rate_limit_store` setting names.
"""

from tap_maptable.budget.adapter import ThrottledAdapter, throttled_session
from tap_maptable.budget.limiter import BudgetSpec, RequestBudget
from tap_maptable.budget.opening import budget_key, open_store
from tap_maptable.budget.stores import BudgetStore, StoreUnavailableError, describe_store

__all__ = [
    "BudgetSpec",
    "BudgetStore",
    "RequestBudget",
    "StoreUnavailableError",
    "ThrottledAdapter",
    "budget_key",
    "describe_store",
    "open_store",
    "throttled_session",
]
