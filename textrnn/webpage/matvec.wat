;; The one WebAssembly function of the page (engine.js): y = b + W x in float32, with 128-bit
;; SIMD, four rows at a time. engine.js carries its bytes in base64; rebuild them with wabt:
;;   npx -p wabt wat2wasm matvec.wat -o matvec.wasm && base64 -w0 matvec.wasm
(module
  (memory (export "memory") 1)
  ;; Pointers are byte offsets, 16-byte aligned; rows and cols are multiples of 4 (the caller
  ;; pads with zeros). Four rows at a time share each load of x.
  (func (export "matvec")
    (param $w i32) (param $x i32) (param $b i32) (param $y i32) (param $rows i32) (param $cols i32)
    (local $r i32) (local $i i32) (local $nb i32) (local $xv v128)
    (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $nb (i32.shl (local.get $cols) (i32.const 2)))
    (block $done
      (loop $row
        (br_if $done (i32.ge_u (local.get $r) (local.get $rows)))
        (local.set $w1 (i32.add (local.get $w) (local.get $nb)))
        (local.set $w2 (i32.add (local.get $w1) (local.get $nb)))
        (local.set $w3 (i32.add (local.get $w2) (local.get $nb)))
        (local.set $a0 (v128.const f32x4 0 0 0 0))
        (local.set $a1 (v128.const f32x4 0 0 0 0))
        (local.set $a2 (v128.const f32x4 0 0 0 0))
        (local.set $a3 (v128.const f32x4 0 0 0 0))
        (local.set $i (i32.const 0))
        (block $end
          (loop $by4
            (br_if $end (i32.ge_u (local.get $i) (local.get $nb)))
            (local.set $xv (v128.load (i32.add (local.get $x) (local.get $i))))
            (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $xv)
              (v128.load (i32.add (local.get $w) (local.get $i))))))
            (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $xv)
              (v128.load (i32.add (local.get $w1) (local.get $i))))))
            (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $xv)
              (v128.load (i32.add (local.get $w2) (local.get $i))))))
            (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $xv)
              (v128.load (i32.add (local.get $w3) (local.get $i))))))
            (local.set $i (i32.add (local.get $i) (i32.const 16)))
            (br $by4)))
        (call $put (local.get $a0) (local.get $b) (local.get $y) (i32.add (local.get $r) (i32.const 0)))
        (call $put (local.get $a1) (local.get $b) (local.get $y) (i32.add (local.get $r) (i32.const 1)))
        (call $put (local.get $a2) (local.get $b) (local.get $y) (i32.add (local.get $r) (i32.const 2)))
        (call $put (local.get $a3) (local.get $b) (local.get $y) (i32.add (local.get $r) (i32.const 3)))
        (local.set $w (i32.add (local.get $w3) (local.get $nb)))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (br $row))))
  ;; y[r] = b[r] + the sum of a's four lanes
  (func $put (param $a v128) (param $b i32) (param $y i32) (param $r i32)
    (local.set $r (i32.shl (local.get $r) (i32.const 2)))
    (f32.store (i32.add (local.get $y) (local.get $r))
      (f32.add (f32.load (i32.add (local.get $b) (local.get $r)))
        (f32.add (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
                 (f32.add (f32x4.extract_lane 2 (local.get $a)) (f32x4.extract_lane 3 (local.get $a)))))))
)
