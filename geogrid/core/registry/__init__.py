"""The base-information registry's pure parts (issue 15): identity numbers and their
checks (:mod:`.ids`), encryption and blind indexes (:mod:`.crypto`), care groups
(:mod:`.care`), spreadsheet columns and row checks (:mod:`.columns`), search grams
(:mod:`.grams`)."""

from geogrid.core.registry.care import CARE_GROUPS, CareGroup, care_codes
from geogrid.core.registry.columns import FIELDS, KINDS, CheckedRows, check_rows, resolve_columns
from geogrid.core.registry.crypto import Vault
from geogrid.core.registry.grams import grams_lists, query_grams, text_grams
from geogrid.core.registry.ids import (
    id_number_problem,
    mask_id,
    normalise_phone,
    parse_id_number,
    uscc_problem,
)

__all__ = [
    "CARE_GROUPS",
    "CareGroup",
    "care_codes",
    "FIELDS",
    "KINDS",
    "CheckedRows",
    "check_rows",
    "resolve_columns",
    "Vault",
    "grams_lists",
    "query_grams",
    "text_grams",
    "id_number_problem",
    "mask_id",
    "normalise_phone",
    "parse_id_number",
    "uscc_problem",
]
