DROP TABLE billing_pauses;
