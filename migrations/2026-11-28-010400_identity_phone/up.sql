-- Phone given at guest checkout (Razorpay prefill, support); optional.
ALTER TABLE users ADD COLUMN phone TEXT CHECK (phone IS NULL OR length(phone) <= 32);
