"""Feature helpers the churn notebook imports."""

NUMERIC = ["tenure_months", "monthly_charges", "support_calls"]


def add_ratios(df):
    df = df.copy()
    df["charges_per_call"] = df["monthly_charges"] / (1 + df["support_calls"])
    return df
