"""SpendSense recommender service."""
