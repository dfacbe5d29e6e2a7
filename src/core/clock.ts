/** Unix seconds: the unit of every expiry, timestamp and window in the protocol and the stores. */
export const nowSeconds = (): number => Math.floor(Date.now() / 1000);
