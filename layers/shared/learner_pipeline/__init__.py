"""Shared logic of the Linear Learner pipeline: data preparation, SageMaker requests and evaluation.

Modules here never import boto3 at module level except those under ``aws``; the logic receives
the clients it needs, so unit tests run without AWS or mocks.
"""
