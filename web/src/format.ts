// Numbers, dates and names as people read them.

const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });
const wholeMoney = new Intl.NumberFormat("en-US", {
  style: "currency",
  currency: "USD",
  maximumFractionDigits: 0,
});

export function formatMoney(value: number | null | undefined, whole = false): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return (whole ? wholeMoney : money).format(value);
}

export function formatPercent(ratio: number | null | undefined, digits = 0): string {
  if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return "—";
  return `${(ratio * 100).toFixed(digits)} %`;
}

export function formatNumber(value: number | null | undefined, digits = 1): string {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return value.toFixed(digits).replace(/\.0+$/, "");
}

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso.length === 10 ? `${iso}T00:00:00` : iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleDateString("en-US", { year: "numeric", month: "short", day: "numeric" });
}

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString("en-US", {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
  });
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** snake_case or UPPER_CASE identifiers as words: "spending_exceeds_income_by_5pct" → "Spending exceeds income by 5 %". */
export function humanize(id: string): string {
  const words = id
    .replace(/_/g, " ")
    .replace(/(\d+)pct\b/g, "$1 %")
    .toLowerCase()
    .trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export const PERSONAS: Record<string, { name: string; about: string }> = {
  high_utilization: {
    name: "High Utilization",
    about:
      "A card is at 50 % of its limit or more, interest is being charged, only minimum payments are made, or a payment is overdue. The focus: bringing utilization down, planning payments, autopay.",
  },
  variable_income_budgeter: {
    name: "Variable Income Budgeter",
    about:
      "Pay arrives more than 45 days apart (median) and the cash buffer covers less than a month. The focus: percent-based budgets, emergency-fund basics, smoothing income.",
  },
  cash_flow_balancer: {
    name: "Cash-Flow Balancer",
    about:
      "Spending runs at least 5 % above income over the window, or an overdraft or insufficient-funds fee was charged. The focus: avoiding overdrafts, timing bills, building a buffer.",
  },
  subscription_heavy: {
    name: "Subscription-Heavy",
    about:
      "Three or more recurring merchants, costing $50 a month or more or 10 % of spending. The focus: a subscription audit, cancelling or negotiating, bill alerts.",
  },
  savings_builder: {
    name: "Savings Builder",
    about:
      "Savings grow (2 % or more over the window, or $200 a month) while every card stays below 30 % utilization. The focus: goals, automation, high-yield savings and CD basics.",
  },
  general_wellness: {
    name: "General Wellness",
    about: "None of the five focused personas matched: general financial-wellness education.",
  },
};

export function personaName(id: string): string {
  return PERSONAS[id]?.name ?? humanize(id);
}

export const WINDOW_LABEL: Record<"30d" | "180d", string> = { "30d": "Last 30 days", "180d": "Last 180 days" };
