export * from '../../../methods/account/create.ts';
