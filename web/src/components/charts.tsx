// Small SVG charts of the signals: horizontal bars with reference lines. Widths are percentages of
// the chart's width, so the charts follow the page down to a phone's width with text at its real size.
// Each chart has a text summary (for screen readers) and its numbers in a table.
import { useId, type ReactNode } from "react";
import type { Card, Signals, Stream } from "../api/types";
import { formatDate, formatMoney, formatNumber, formatPercent, humanize } from "../format";

export interface Bar {
  label: string;
  value: number; // in the chart's unit
  display: string; // the value as people read it
  tone?: "ok" | "warn" | "high" | "severe" | "neutral" | "negative";
}

export interface Marker {
  at: number; // in the chart's unit
  label: string;
}

function pct(value: number, max: number): string {
  if (max <= 0) return "0%";
  return `${Math.max(0, Math.min(100, (value / max) * 100)).toFixed(2)}%`;
}

export function BarChart({
  title,
  summary,
  bars,
  max,
  markers = [],
  columns,
  footer,
}: {
  title: string;
  summary: string;
  bars: Bar[];
  max: number;
  markers?: Marker[];
  columns: [string, string];
  footer?: ReactNode;
}) {
  const id = useId();
  return (
    <figure className="chart" aria-labelledby={`${id}-title`}>
      <figcaption>
        <h3 id={`${id}-title`}>{title}</h3>
        <p className="muted small">{summary}</p>
      </figcaption>
      <div className="bars" role="img" aria-label={`${title}. ${summary}`}>
        {markers.length > 0 && (
          <svg width="100%" height="16" className="chart-svg" aria-hidden="true" focusable="false">
            {markers.map((m) => (
              <text
                key={m.label}
                className="marker-label"
                x={pct(m.at, max)}
                y="12"
                textAnchor={m.at / max > 0.9 ? "end" : m.at / max < 0.08 ? "start" : "middle"}
              >
                {m.label}
              </text>
            ))}
          </svg>
        )}
        {bars.map((bar, i) => (
          <div className="bar-row" key={`${bar.label}-${i}`}>
            <div className="bar-label">
              {bar.label}: <strong>{bar.display}</strong>
            </div>
            <svg width="100%" height="20" className="chart-svg" aria-hidden="true" focusable="false">
              <rect x="0" y="3" width="100%" height="14" rx="3" className="bar-track" />
              <rect
                x="0"
                y="3"
                width={pct(Math.abs(bar.value), max)}
                height="14"
                rx="3"
                className={`bar bar-${bar.tone ?? "neutral"}`}
              />
              {markers.map((m) => (
                <line key={m.label} className="marker" x1={pct(m.at, max)} x2={pct(m.at, max)} y1="0" y2="20" />
              ))}
            </svg>
          </div>
        ))}
      </div>
      {footer}
      <details className="chart-data">
        <summary>Show the numbers</summary>
        <div className="table-wrap" tabIndex={0} role="region" aria-label={`${title}: the numbers`}>
          <table>
            <thead>
              <tr>
                <th scope="col">{columns[0]}</th>
                <th scope="col">{columns[1]}</th>
              </tr>
            </thead>
            <tbody>
              {bars.map((bar, i) => (
                <tr key={`${bar.label}-${i}`}>
                  <td>{bar.label}</td>
                  <td>{bar.display}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

function utilizationTone(u: number): Bar["tone"] {
  if (u >= 0.8) return "severe";
  if (u >= 0.5) return "high";
  if (u >= 0.3) return "warn";
  return "ok";
}

export function cardName(card: Pick<Card, "name" | "mask" | "account_id">): string {
  const name = card.name ?? "Card";
  return card.mask ? `${name} ending in ${card.mask}` : name;
}

export function UtilizationChart({ cards }: { cards: Card[] }) {
  const withLimit = cards.filter((c) => c.utilization !== null && c.utilization !== undefined);
  if (withLimit.length === 0) {
    return (
      <figure className="chart">
        <figcaption>
          <h3>Card utilization</h3>
        </figcaption>
        <p className="muted">No credit card with a known limit in this window.</p>
      </figure>
    );
  }
  const highest = Math.max(...withLimit.map((c) => c.utilization ?? 0));
  const max = Math.max(1, highest);
  return (
    <BarChart
      title="Card utilization"
      summary={`Balance as a share of each card's limit, against the 30 %, 50 % and 80 % lines. Highest: ${formatPercent(highest)}.`}
      columns={["Card", "Utilization (balance of limit)"]}
      max={max}
      markers={[
        { at: 0.3, label: "30 %" },
        { at: 0.5, label: "50 %" },
        { at: 0.8, label: "80 %" },
      ]}
      bars={withLimit.map((c) => ({
        label: cardName(c),
        value: c.utilization ?? 0,
        display: `${formatPercent(c.utilization)} (${formatMoney(c.balance, true)} of ${formatMoney(c.limit, true)})`,
        tone: utilizationTone(c.utilization ?? 0),
      }))}
      footer={
        withLimit.some((c) => c.interest_charges > 0 || c.minimum_payment_only || c.overdue) ? (
          <ul className="small">
            {withLimit
              .filter((c) => c.interest_charges > 0 || c.minimum_payment_only || c.overdue)
              .map((c) => (
                <li key={c.account_id}>
                  {cardName(c)}:{" "}
                  {[
                    c.interest_charges > 0 ? `${formatMoney(c.interest_charges)} interest charged` : null,
                    c.minimum_payment_only ? "only minimum payments" : null,
                    c.overdue ? "a payment is overdue" : null,
                  ]
                    .filter(Boolean)
                    .join(", ")}
                </li>
              ))}
          </ul>
        ) : null
      }
    />
  );
}

export function SubscriptionsChart({ subscriptions }: { subscriptions: NonNullable<Signals["subscriptions"]> }) {
  const merchants = [...(subscriptions.recurring_merchants ?? [])].sort((a, b) => b.monthly_amount - a.monthly_amount);
  const summary = `${subscriptions.recurring_merchant_count} recurring merchant${
    subscriptions.recurring_merchant_count === 1 ? "" : "s"
  }, ${formatMoney(subscriptions.monthly_recurring_spend)} a month${
    subscriptions.subscription_share !== null ? `, ${formatPercent(subscriptions.subscription_share, 1)} of spending` : ""
  }.`;
  if (merchants.length === 0) {
    return (
      <figure className="chart">
        <figcaption>
          <h3>Subscriptions and recurring payments</h3>
        </figcaption>
        <p className="muted">No recurring merchant found in this window.</p>
      </figure>
    );
  }
  return (
    <BarChart
      title="Subscriptions and recurring payments"
      summary={summary}
      columns={["Merchant", "Monthly cost"]}
      max={Math.max(...merchants.map((m) => m.monthly_amount), 1)}
      bars={merchants.map((m) => ({
        label: m.merchant,
        value: m.monthly_amount,
        display: `${formatMoney(m.monthly_amount)}/month (${humanize(m.cadence).toLowerCase()}, ${m.count} charges)`,
        tone: "neutral",
      }))}
    />
  );
}

export function SavingsChart({ savings }: { savings: NonNullable<Signals["savings"]> }) {
  const balance = savings.balance ?? 0;
  const inflow = savings.net_inflow ?? 0;
  const start = balance - inflow;
  const coverage = savings.emergency_fund_months ?? 0;
  const noSavings = savings.balance === null || (balance === 0 && inflow === 0);
  return (
    <div className="chart-pair">
      {noSavings ? (
        <figure className="chart">
          <figcaption>
            <h3>Savings growth</h3>
          </figcaption>
          <p className="muted">No savings-like account (savings, money market, HSA, CD) with money in it in this data.</p>
        </figure>
      ) : (
      <BarChart
        title="Savings growth"
        summary={`Savings-like accounts went from ${formatMoney(start, true)} to ${formatMoney(balance, true)} (net ${
          inflow >= 0 ? "inflow" : "outflow"
        } ${formatMoney(Math.abs(inflow))}, ${formatMoney(savings.net_inflow_monthly)} a month; growth ${formatPercent(
          savings.growth_rate,
          1,
        )}).`}
        columns={["Savings balance", "Amount"]}
        max={Math.max(start, balance, 1)}
        bars={[
          { label: "At the window's start", value: start, display: formatMoney(start, true), tone: "neutral" },
          { label: "Now", value: balance, display: formatMoney(balance, true), tone: inflow >= 0 ? "ok" : "warn" },
        ]}
      />
      )}
      <BarChart
        title="Emergency fund"
        summary={`Savings cover ${formatNumber(coverage)} months of average spending (3 to 6 months is a common goal).`}
        columns={["Measure", "Months of spending"]}
        max={Math.max(6.5, coverage)}
        markers={[
          { at: 3, label: "3 months" },
          { at: 6, label: "6 months" },
        ]}
        bars={[
          {
            label: "Coverage",
            value: coverage,
            display: `${formatNumber(coverage)} months`,
            tone: coverage >= 3 ? "ok" : coverage >= 1 ? "warn" : "high",
          },
        ]}
      />
    </div>
  );
}

export function IncomeChart({
  income,
  streams,
}: {
  income: NonNullable<Signals["income"]>;
  streams: Stream[];
}) {
  const gap = income.median_pay_gap_days;
  const buffer = income.cash_flow_buffer_months ?? 0;
  const payStreams = streams.filter((s) => s.direction === "inflow");
  return (
    <div className="chart-pair">
      <BarChart
        title="Income cadence"
        summary={`Pay frequency: ${humanize(income.pay_frequency ?? "unknown").toLowerCase()}, ${formatNumber(
          income.pay_count,
          0,
        )} payments; median gap ${gap === null ? "unknown" : `${formatNumber(gap, 0)} days`} (more than 45 days counts as variable income).`}
        columns={["Measure", "Days"]}
        max={Math.max(90, gap ?? 0)}
        markers={[{ at: 45, label: "45 days" }]}
        bars={[
          {
            label: "Median days between paychecks",
            value: gap ?? 0,
            display: gap === null ? "not enough paychecks" : `${formatNumber(gap, 0)} days`,
            tone: gap !== null && gap > 45 ? "warn" : "ok",
          },
        ]}
        footer={
          payStreams.length > 0 ? (
            <ul className="small">
              {payStreams.map((s) => (
                <li key={s.stream_id}>
                  {s.merchant_name}: {humanize(s.frequency).toLowerCase()}, about {formatMoney(Math.abs(s.average_amount))}{" "}
                  each{s.predicted_next_date ? `, next expected ${formatDate(s.predicted_next_date)}` : ""}
                </li>
              ))}
            </ul>
          ) : null
        }
      />
      <BarChart
        title="Cash-flow buffer"
        summary={`Your checking balance (${formatMoney(income.checking_balance, true)}) covers ${formatNumber(
          buffer,
        )} months of average spending (under 1 month is a thin buffer).`}
        columns={["Measure", "Months of spending"]}
        max={Math.max(3, buffer)}
        markers={[{ at: 1, label: "1 month" }]}
        bars={[
          {
            label: "Buffer",
            value: buffer,
            display: `${formatNumber(buffer)} months`,
            tone: buffer >= 1 ? "ok" : "warn",
          },
        ]}
      />
    </div>
  );
}

export function CashFlowChart({ cashFlow }: { cashFlow: NonNullable<Signals["cash_flow"]> }) {
  const income = cashFlow.income ?? 0;
  const spending = cashFlow.spending ?? 0;
  return (
    <BarChart
      title="Money in and out"
      summary={`Income ${formatMoney(income, true)}, spending ${formatMoney(spending, true)}: net ${formatMoney(
        cashFlow.net,
        true,
      )}. Overdraft or insufficient-funds fees: ${cashFlow.overdraft_fee_count ?? 0}.`}
      columns={["Flow", "Amount"]}
      max={Math.max(income, spending, 1)}
      bars={[
        { label: "Income", value: income, display: formatMoney(income, true), tone: "ok" },
        {
          label: "Spending",
          value: spending,
          display: formatMoney(spending, true),
          tone: spending > income * 1.05 ? "high" : "neutral",
        },
        ...(cashFlow.top_categories ?? []).slice(0, 5).map((c) => ({
          label: humanize(c.category),
          value: c.amount,
          display: formatMoney(c.amount, true),
          tone: "neutral" as const,
        })),
      ]}
    />
  );
}
