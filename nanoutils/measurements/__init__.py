"""Measured rejection data: schema, validated loading, splits by feed, arrays for models.

Example::

    from nanoutils import measurements
    meas = measurements.load_dataset("nf270_fdl2021")           # or measurements.load_measurements("my.csv")
    print(meas.report)                                  # what was read, σ defaults applied
    train, test = measurements.split_by_feed(meas, 0.3, seed=0) # whole feeds only
    arr = train.arrays()                                # feeds × fluxes × quantities, masks
    R_model = arr.model_rejection(c_perm_model)         # (N, M, Q), to compare with arr.R

The CSV schema, the σ rule and the salt-rejection definition are documented in
``data/measured/README.md``.
"""

from ._arrays import MeasuredArrays as MeasuredArrays
from ._load import DEFAULT_SIGMA_R as DEFAULT_SIGMA_R
from ._load import MEASURED_DIR as MEASURED_DIR
from ._load import Measurements as Measurements
from ._load import ReadReport as ReadReport
from ._load import available_datasets as available_datasets
from ._load import load_dataset as load_dataset
from ._load import load_measurements as load_measurements
from ._schema import ColumnNameError as ColumnNameError
from ._schema import DuplicateRowError as DuplicateRowError
from ._schema import InconsistentRowsError as InconsistentRowsError
from ._schema import MeasurementError as MeasurementError
from ._schema import MeasurementValueError as MeasurementValueError
from ._schema import MissingColumnError as MissingColumnError
from ._schema import NonNeutralFeedError as NonNeutralFeedError
from ._schema import Quantity as Quantity
from ._schema import UnknownQuantityError as UnknownQuantityError
from ._schema import format_feed as format_feed
from ._schema import quantity as quantity
from ._splits import feed_groups as feed_groups
from ._splits import group_folds as group_folds
from ._splits import leave_one_study_out as leave_one_study_out
from ._splits import split_by_feed as split_by_feed

__all__ = [
    "DEFAULT_SIGMA_R",
    "MEASURED_DIR",
    "ColumnNameError",
    "DuplicateRowError",
    "InconsistentRowsError",
    "MeasuredArrays",
    "MeasurementError",
    "MeasurementValueError",
    "Measurements",
    "MissingColumnError",
    "NonNeutralFeedError",
    "Quantity",
    "ReadReport",
    "UnknownQuantityError",
    "available_datasets",
    "feed_groups",
    "group_folds",
    "leave_one_study_out",
    "load_dataset",
    "load_measurements",
    "quantity",
    "split_by_feed",
]
