"""A typed async client for PD's HTTP API (``/pd/api/v1``)."""

from controller.pd.client import PDBadResponse, PDClient, PDError, PDStoreNotFound, PDUnavailable
from controller.pd.models import HealthMember, PDConfig, RegionCheck, StoreInfo, pod_of_address

__all__ = [
    "HealthMember",
    "PDBadResponse",
    "PDClient",
    "PDConfig",
    "PDError",
    "PDStoreNotFound",
    "PDUnavailable",
    "RegionCheck",
    "StoreInfo",
    "pod_of_address",
]
