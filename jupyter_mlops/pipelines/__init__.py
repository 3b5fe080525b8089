"""Pipelines cut from a model's replay slice: steps, cache, runs (see ``pipeline``)."""

from .pipeline import Pipeline, PipelineRun, PipelineStepError, open_pipeline, pipeline

__all__ = ["Pipeline", "PipelineRun", "PipelineStepError", "open_pipeline", "pipeline"]
