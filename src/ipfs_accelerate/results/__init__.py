"""Result records and reports: `schema.CaseResult` per (model, hardware) case, `run.TestRecord`
per pytest test, `run.RunResult` per run; `store` writes them, `report_md` and `junit` render them."""
